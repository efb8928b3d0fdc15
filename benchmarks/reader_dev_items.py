"""Development set of extractive QA items for tuning the answer prompt and decoding (benchmarks/rag_prompt_dev.py),
written for this project over the TRAINING corpus, never SQuAD.

Source of the contexts: corpus/wikipedia-sample.jsonl of the shared data (Wikipedia, CC BY-SA 3.0); questions
and answer spans written for this project (same licence).
Articles were drawn with random.Random(7).sample(eligible, 30), where
"eligible" excludes Angola (and Angola-titled articles), Asia, Alain Connes,
America the Beautiful, Afroasiatic languages, "List of ..." and disambiguation
pages. "Ada" was drawn but skipped (no prose paragraphs), leaving 29 articles. Every context was checked
to be verbatim article text and every answer a verbatim span of its context.

Each item: (title, context, question, gold_answers or None).
Contexts are 2-5 consecutive sentences copied verbatim from the article text
(whitespace collapsed); gold answers are verbatim spans of the context.
Unanswerable items have gold None.
"""

ITEMS = [  # (title, context, question, gold_answers or None)
    # --- Appellate court ---
    ("Appellate court",
     "In most U.S. states, and in U.S. federal courts, parties before the court are allowed one appeal as of right. This means that a party who is unsatisfied with the outcome of a trial may bring an appeal to contest that outcome. However, appeals may be costly, and the appellate court must find an error on the part of the court below that justifies upsetting the verdict. Therefore, only a small proportion of trial court decisions result in appeals.",
     "How many appeals are litigants in U.S. federal courts entitled to as a matter of right?",
     ["one", "one appeal"]),
    ("Appellate court",
     "Many U.S. jurisdictions title their appellate court a court of appeal or court of appeals. Historically, others have titled their appellate court a court of errors (or court of errors and appeals), on the premise that it was intended to correct errors made by lower courts.",
     "What older name did some jurisdictions give their appeals courts, reflecting their job of fixing mistakes by lower courts?",
     ["a court of errors", "court of errors"]),
    ("Appellate court",
     "The phrase \"court of appeals\" most often refers to intermediate appellate courts. However, the New York system is different: the \"New York Court of Appeals\" is the highest appellate court; and the phrase \"New York Supreme Court\" applies to the trial court of general jurisdiction.",
     "How many judges sit on the New York Court of Appeals?",
     None),

    # --- Agricultural science ---
    ("Agricultural science",
     "In the United States, a scientific revolution in agriculture began with the Hatch Act of 1887, which used the term \"agricultural science\". The Hatch Act was driven by farmers' interest in knowing the constituents of early artificial fertilizer. The Smith-Hughes Act of 1917 shifted agricultural education back to its vocational roots, but the scientific foundation had been built. After 1906, public expenditures on agricultural research in the US exceeded private expenditures for the next 44 years.",
     "For how long after 1906 did US public spending on agricultural research stay above private spending?",
     ["the next 44 years", "44 years", "44"]),
    ("Agricultural science",
     "With the exception of theoretical agronomy, research in agronomy, more than in any other field, is strongly related to local areas. It can be considered a science of ecoregions, because it is closely linked to soil properties and climate, which are never exactly the same from one place to another. Many people think an agricultural production system relying on local weather, soil characteristics, and specific crops has to be studied locally.",
     "Besides soil properties, what factor that varies from place to place makes agronomy a science of ecoregions?",
     ["climate"]),

    # --- Astronaut ---
    ("Astronaut",
     "Coinage of the term kosmonavt has been credited to Soviet aeronautics pioneer Mikhail Tikhonravov (1900–1974). The first cosmonaut was Soviet Air Force pilot Yuri Gagarin, also the first person in space. Valentina Tereshkova, a Russian factory worker, was the first woman in space, as well as the first civilian among the Soviet cosmonaut or NASA astronaut corps to make a spaceflight.",
     "Who is credited with inventing the Russian word for cosmonaut?",
     ["Mikhail Tikhonravov", "Tikhonravov"]),
    ("Astronaut",
     "The term taikonaut is used by some English-language news media organizations for professional space travelers from China. The word has featured in the Longman and Oxford English dictionaries, the latter of which describes it as \"a hybrid of the Chinese term taikong (space) and the Greek naut (sailor)\"; the term became more common in 2003 when China sent its first astronaut Yang Liwei into space aboard the Shenzhou 5 spacecraft.",
     "How long did Yang Liwei's Shenzhou 5 flight last?",
     None),

    # --- Abraham Lincoln ---
    ("Abraham Lincoln",
     "Reentering politics in 1854, he became a leader in building the new Republican Party, which had a statewide majority in Illinois. In 1858, while taking part in a series of highly publicized debates with his opponent and rival, Democrat Stephen A. Douglas, Lincoln spoke out against the expansion of slavery, but lost the U.S. Senate race to Douglas.",
     "Who beat Lincoln in the 1858 election for the U.S. Senate?",
     ["Stephen A. Douglas", "Douglas"]),
    ("Abraham Lincoln",
     "Lincoln initially concentrated on the military and political dimensions of the war. His primary goal was to reunite the nation. He suspended habeas corpus, leading to the controversial ex parte Merryman decision, and he averted potential British intervention in the war by defusing the Trent Affair in late 1861.",
     "What crisis did Lincoln defuse in order to keep Britain out of the war?",
     ["the Trent Affair", "Trent Affair"]),
    ("Abraham Lincoln",
     "Lincoln's victory prompted seven southern slave states to form the Confederate States of America before he moved into the White House - no compromise or reconciliation was found regarding slavery and secession. Subsequently, on April 12, 1861, a Confederate attack on Fort Sumter inspired the North to enthusiastically rally behind the Union in a declaration of war.",
     "On what date did Confederate forces attack Fort Sumter?",
     ["April 12, 1861"]),

    # --- Academy Award for Best Production Design ---
    ("Academy Award for Best Production Design",
     "The category's original name was Best Art Direction, but was changed to its current name in 2012 for the 85th Academy Awards. This change resulted from the Art Director's branch of the Academy being renamed the Designer's branch. Since 1947, the award is shared with the set decorator(s).",
     "Under what title was the production design Oscar presented before 2012?",
     ["Best Art Direction"]),
    ("Academy Award for Best Production Design",
     "The Academy Awards are the oldest awards ceremony for achievements in motion pictures. The Academy Award for Best Production Design recognizes achievement in art direction on a film. The category's original name was Best Art Direction, but was changed to its current name in 2012 for the 85th Academy Awards.",
     "Which film was the first to win the award after it was renamed Best Production Design?",
     None),

    # --- Android (robot) ---
    ("Android (robot)",
     "The term \"android\" appears in US patents as early as 1863 in reference to miniature human-like toy automatons. The term android was used in a more modern sense by the French author Auguste Villiers de l'Isle-Adam in his work Tomorrow's Eve (1886). This story features an artificial humanlike robot named Hadaly.",
     "Which French writer gave the word android its modern sense in an 1886 novel?",
     ["Auguste Villiers de l'Isle-Adam", "Villiers de l'Isle-Adam"]),
    ("Android (robot)",
     "The word \"android\" was used in Star Trek: The Original Series episode \"What Are Little Girls Made Of?\" The abbreviation \"andy\", coined as a pejorative by writer Philip K. Dick in his novel Do Androids Dream of Electric Sheep?, has seen some further usage, such as within the TV series Total Recall 2070.",
     "What insulting short form for androids did Philip K. Dick introduce?",
     ["andy"]),

    # --- Animalia (book) ---
    ("Animalia (book)",
     "Animalia is an illustrated children's book by Graeme Base. It was originally published in 1986, followed by a tenth anniversary edition in 1996, and a 25th anniversary edition in 2012. Over three million copies have been sold.",
     "Who is the author of the picture book Animalia?",
     ["Graeme Base"]),
    ("Animalia (book)",
     "The illustrations contain many other objects beginning with that letter that the reader can try to identify. As an additional challenge, the author has hidden a picture of himself as a child in every picture.",
     "What did the illustrator conceal in each of the book's illustrations?",
     ["a picture of himself", "himself as a child"]),
    ("Animalia (book)",
     "A television series was also created, based on the book, which airs in the United States, Australia, Canada, the United Kingdom, Norway and Venezuela. It also airs on Minimax for the Czech Republic and Slovakia. And recently in Greece on the channel ET1.",
     "How many episodes does the Animalia television series have?",
     None),

    # --- Asphalt ---
    ("Asphalt",
     "In Canadian English, the word bitumen is used to refer to the vast Canadian deposits of extremely heavy crude oil, while asphalt is used for the oil refinery product used to pave roads and manufacture roof shingles and various waterproofing products. Diluted bitumen (diluted with naphtha to make it flow in pipelines) is known as dilbit in the Canadian petroleum industry, while bitumen \"upgraded\" to synthetic crude oil is known as syncrude and syncrude blended with bitumen as synbit.",
     "In Canada's oil industry, what is bitumen thinned with naphtha for pipeline transport called?",
     ["dilbit"]),

    # --- Allah ---
    ("Allah",
     "The word Allah has been used by Arabs of different religions since pre-Islamic times. More specifically, it has been used as a term to refer to God by Arab-Muslims, Arab-Christians and non-Arab Muslims overall. It is now mainly used by Muslims and Arab Christians to refer to God.",
     "Which groups today chiefly use the word Allah as their term for God?",
     ["Muslims and Arab Christians"]),
    ("Allah",
     "It is now mainly used by Muslims and Arab Christians to refer to God. It is also often, albeit not exclusively, used in this way by Bábists, Bahá'ís, Indonesian and Maltese Christians, and Mizrahi Jews. Similar usage by Christians and Sikhs in West Malaysia has recently led to political and legal controversies.",
     "In which year did a Malaysian court rule on whether Christians may use the word Allah?",
     None),

    # --- Aristotle ---
    ("Aristotle",
     "His father, Nicomachus, died when Aristotle was a child, whereafter Proxenus of Atarneus became his guardian. At eighteen, he joined Plato's Academy in Athens and remained there until the age of thirty-seven (c. 347 BC).",
     "Who looked after Aristotle after his father's death?",
     ["Proxenus of Atarneus", "Proxenus"]),
    ("Aristotle",
     "At eighteen, he joined Plato's Academy in Athens and remained there until the age of thirty-seven (c. 347 BC). His writings cover many subjects – including physics, biology, zoology, metaphysics, logic, ethics, aesthetics, poetry, theater, music, rhetoric, linguistics, politics and government – and constitute the first comprehensive system of Western philosophy. Shortly after Plato died, Aristotle left Athens and, at the request of Philip of Macedon, tutored Alexander the Great starting from 343 BC.",
     "In what year did Aristotle start teaching Alexander the Great?",
     ["343 BC", "343"]),

    # --- Articles of Confederation ---
    ("Articles of Confederation",
     "The Articles of Confederation, formally the Articles of Confederation and Perpetual Union, was an agreement among all thirteen original states in the United States of America that served as its first constitution. Its drafting by a committee appointed by the Second Continental Congress began on July 12, 1776, and an approved version was sent to the states for ratification in late 1777. The formal ratification by all thirteen states was completed in early 1781.",
     "When did the committee begin drafting the Articles?",
     ["July 12, 1776"]),
    ("Articles of Confederation",
     "Congress had already requested and failed to get power over navigation laws. Meanwhile, each State acted individually against Great Britain to little effect. When other New England states closed their ports to British shipping, Connecticut hastened to profit by opening its ports.",
     "Which state took advantage of its neighbours' embargo by opening its harbours to British ships?",
     ["Connecticut"]),
    ("Articles of Confederation",
     "By the end of July 1788, 11 of the 13 states had ratified the new Constitution. Congress continued to convene under the Articles with a quorum until October.",
     "Which was the last of the thirteen states to ratify the new Constitution?",
     None),

    # --- Austroasiatic languages ---
    ("Austroasiatic languages",
     "The Austroasiatic languages are well known for having a \"sesquisyllabic\" pattern, with basic nouns and verbs consisting of a reduced minor syllable plus a full syllable. Many of them also have infixes.",
     "What term describes the typical Austroasiatic word shape of a reduced minor syllable followed by a full one?",
     ["sesquisyllabic"]),
    ("Austroasiatic languages",
     "According to Riccio et al. (2011), the Munda people are likely descended from Austroasiatic migrants from southeast Asia. According to Zhang et al. (2015), Austroasiatic (male) migrations from southeast Asia into India took place after the lates Glacial maximum, circa 10,000 years ago.",
     "Roughly when did Austroasiatic-speaking men migrate from Southeast Asia into India?",
     ["circa 10,000 years ago", "10,000 years ago"]),

    # --- Alabama ---
    ("Alabama",
     "Construction of an Airbus A320 family aircraft assembly plant in Mobile was formally announced by Airbus CEO Fabrice Brégier from the Mobile Convention Center on July 2, 2012. The plans include a $600 million factory at the Brookley Aeroplex for the assembly of the A319, A320 and A321 aircraft. Construction began in 2013, with plans for it to become operable by 2015 and produce up to 50 aircraft per year by 2017.",
     "How much was the Airbus factory at Brookley Aeroplex planned to cost?",
     ["$600 million"]),
    ("Alabama",
     "The Port of Mobile, Alabama's only saltwater port, is a large seaport on the Gulf of Mexico with inland waterway access to the Midwest by way of the Tennessee-Tombigbee Waterway. The Port of Mobile was ranked 12th by tons of traffic in the United States during 2009.",
     "How many tons of cargo passed through the Port of Mobile in 2009?",
     None),

    # --- Actrius ---
    ("Actrius",
     "Actresses (Catalan: Actrius) is a 1997 Catalan language Spanish drama film produced and directed by Ventura Pons and based on the award-winning stage play E.R. by Josep Maria Benet i Jornet. The film has no male actors, with all roles played by females.",
     "Who directed the film Actrius?",
     ["Ventura Pons"]),
    ("Actrius",
     "Actrius screened in 2001 at the Grauman's Egyptian Theatre in an American Cinematheque retrospective of the works of its director. The film had first screened at the same location in 1998. It was also shown at the 1997 Stockholm International Film Festival.",
     "How much money did Actrius earn at the box office?",
     None),

    # --- Anatomy ---
    ("Anatomy",
     "They have a bony skeleton, are generally laterally flattened, have five pairs of gills protected by an operculum, and a mouth at or near the tip of the snout. The dermis is covered with overlapping scales. Bony fish have a swim bladder which helps them maintain a constant depth in the water column, but not a cloaca.",
     "Which organ lets bony fish hold a steady depth in the water?",
     ["a swim bladder", "swim bladder"]),

    # --- Alphabet ---
    ("Alphabet",
     "The largest segmental script is probably an abugida, Devanagari. When written in Devanagari, Vedic Sanskrit has an alphabet of 53 letters, including the visarga mark for final aspiration and special letters for kš and jñ, though one of the letters is theoretical and not actually used.",
     "How many letters make up the Vedic Sanskrit alphabet written in Devanagari?",
     ["53 letters", "53"]),
    ("Alphabet",
     "At the other extreme are languages such as English, where the pronunciations of many words simply have to be memorized as they do not correspond to the spelling in a consistent way. For English, this is partly because the Great Vowel Shift occurred after the orthography was established, and because English has acquired a large number of loanwords at different times, retaining their original spelling at varying levels.",
     "Which sound change took place after English spelling had already become fixed?",
     ["the Great Vowel Shift", "Great Vowel Shift"]),

    # --- An American in Paris ---
    ("An American in Paris",
     "Gershwin composed An American in Paris on commission from the conductor Walter Damrosch. He scored the piece for the standard instruments of the symphony orchestra plus celesta, saxophones, and automobile horns.",
     "Which conductor commissioned Gershwin to write the piece?",
     ["Walter Damrosch", "Damrosch"]),
    ("An American in Paris",
     "Gershwin responded to the critics, \"It's not a Beethoven Symphony, you know... It's a humorous piece, nothing solemn about it. It's not intended to draw tears. If it pleases symphony audiences as a light, jolly piece, a series of impressions musically expressed, it succeeds.\"",
     "How did Gershwin characterise the work when answering his critics?",
     ["a humorous piece", "humorous"]),
    ("An American in Paris",
     "Ravel's tour reignited Gershwin's desire to return to Paris which he did in March 1928. Ravel's high praise of Gershwin in an introductory letter to Boulanger caused Gershwin to seriously consider taking much more time to study abroad in Paris. Yet after playing for her, she told him she could not teach him.",
     "How many months did Gershwin spend in Paris on his 1928 trip?",
     None),

    # --- American Football Conference ---
    ("American Football Conference",
     "The American Football Conference (AFC) is one of the two conferences of the National Football League (NFL). This conference and its counterpart, the National Football Conference (NFC), currently contain 16 teams each, making up the 32 teams of the NFL.",
     "How many clubs does each of the two NFL conferences currently have?",
     ["16 teams", "16"]),
    ("American Football Conference",
     "The AFC logo basically remained unchanged from 1970 to 2009. The 2010 NFL season introduced an updated AFC logo, with the most notable revision being the removal of two stars (leaving four representing the four divisions of the AFC), and moving the stars inside the letter, similar to the NFC logo.",
     "What was the most significant change made to the AFC logo in 2010?",
     ["the removal of two stars", "removal of two stars"]),

    # --- Albert Einstein ---
    ("Albert Einstein",
     "A month later, Einstein's works were among those targeted by Nazi book burnings, with Nazi propaganda minister Joseph Goebbels proclaiming, \"Jewish intellectualism is dead.\" One German magazine included him in a list of enemies of the German regime with the phrase, \"not yet hanged\", offering a $5,000 bounty on his head.",
     "Which Nazi minister announced that Jewish intellectualism was dead?",
     ["Joseph Goebbels", "Goebbels"]),
    ("Albert Einstein",
     "One German magazine included him in a list of enemies of the German regime with the phrase, \"not yet hanged\", offering a $5,000 bounty on his head. In a subsequent letter to physicist and friend Max Born, who had already emigrated from Germany to England, Einstein wrote, \"... I must confess that the degree of their brutality and cowardice came as something of a surprise.\"",
     "How large a reward did a German magazine put on Einstein's head?",
     ["$5,000", "a $5,000 bounty"]),

    # --- Atomic number ---
    ("Atomic number",
     "The quest for new elements is usually described using atomic numbers. As of 2010, elements with atomic numbers 1 to 118 have been observed. Synthesis of new elements is accomplished by bombarding target atoms of heavy elements with ions, such that the sum of the atomic numbers of the target and ion elements equals the atomic number of the element being created.",
     "Up to what atomic number had elements been observed by 2010?",
     ["118"]),
    ("Atomic number",
     "Dmitri Mendeleev claimed that he arranged his first periodic tables in order of atomic weight (\"Atomgewicht\"). However, in consideration of the elements' observed chemical properties, he changed the order slightly and placed tellurium (atomic weight 127.6) ahead of iodine (atomic weight 126.9).",
     "Which element did Mendeleev put before iodine even though it was heavier?",
     ["tellurium"]),

    # --- Azerbaijan ---
    ("Azerbaijan",
     "There are 106 species of mammals, 97 species of fish, 363 species of birds, 10 species of amphibians and 52 species of reptiles which have been recorded and classified in Azerbaijan. The national animal of Azerbaijan is the Karabakh horse, a mountain-steppe racing and riding horse endemic to Azerbaijan. The Karabakh horse has a reputation for its good temper, speed, elegance and intelligence.",
     "What animal is Azerbaijan's national symbol?",
     ["the Karabakh horse", "Karabakh horse"]),
    ("Azerbaijan",
     "Azerbaijan hosted several major sport competitions in last decade, including the 2013 F1 Powerboat World Championship, 2012 FIFA U-17 Women's World Cup, 2011 AIBA World Boxing Championships, 2010 European Wrestling Championships, 2009 Rhythmic Gymnastics European Championships, 2014 European Taekwondo Championships. On 8 December 2012, Baku was selected to host the 2015 European Games, the first to be held in competition's history. The most important annual sporting events held in the country are Baku Cup and Tour d'Azerbaïdjan cycling race.",
     "Which city was picked to stage the inaugural European Games in 2015?",
     ["Baku"]),

    # --- Ayn Rand ---
    ("Ayn Rand",
     "In 1951 Rand moved from Los Angeles to New York City, where she gathered a group of these admirers around her. This group (jokingly designated \"The Collective\") included future Federal Reserve Chairman Alan Greenspan, a young psychology student named Nathan Blumenthal (later Nathaniel Branden) and his wife Barbara, and Barbara's cousin Leonard Peikoff.",
     "Which member of Rand's circle later became chairman of the Federal Reserve?",
     ["Alan Greenspan", "Greenspan"]),
    ("Ayn Rand",
     "There were other positive reviews, but Rand dismissed most of them as either not understanding her message or as being from unimportant publications. Some negative reviews focused on the length of the novel, such as one that called it \"a whale of a book\" and another that said \"anyone who is taken in by it deserves a stern lecture on paper-rationing\".",
     "Which publication described The Fountainhead as \"a whale of a book\"?",
     None),

    # --- Aardwolf ---
    ("Aardwolf",
     "The aardwolf (Proteles cristata) is a small, insectivorous mammal, native to East and Southern Africa. Its name means \"earth wolf\" in Afrikaans and Dutch. It is also called \"maanhaar jackal\" (Afrikaans for \"mane jackal\") or civet hyena, based on the secretions from their anal glands, reminiscent of civets.",
     "What does the word aardwolf mean when translated from Afrikaans?",
     ["earth wolf"]),
    ("Aardwolf",
     "The aardwolf is in the same family as the hyenas. Unlike many of its relatives in the order Carnivora, the aardwolf does not hunt large animals. It eats insects, mainly termites – one aardwolf can eat about 250,000 termites during a single night, using its long, sticky tongue to capture them.",
     "How many termites can a single aardwolf consume in one night?",
     ["about 250,000", "250,000"]),

    # --- Altruism ---
    ("Altruism",
     "Altruism or selflessness is the opposite of selfishness. The word was coined by the French philosopher Auguste Comte in French, as altruisme, for an antonym of egoism. He derived it from the Italian altrui, which in turn was derived from Latin alteri, meaning \"other people\" or \"somebody else\".",
     "Which philosopher invented the word altruism?",
     ["Auguste Comte", "Comte"]),
    ("Altruism",
     "There exists a wide range of philosophical views on man's obligations or motivations to act altruistically. Proponents of ethical altruism maintain that individuals are morally obligated to act altruistically. The opposing view is ethical egoism, which maintains that moral agents should always act in their own self-interest.",
     "What position holds that people ought always to pursue their own interests?",
     ["ethical egoism"]),

    # --- Appellate procedure in the United States ---
    ("Appellate procedure in the United States",
     "There are many types of standard of review for appeals, such as de novo and abuse of discretion. However, most appeals begin when a party files a petition for review to a higher court for the purpose of overturning the lower court's decision.",
     "What document does a party usually file with a higher court to start an appeal?",
     ["a petition for review", "petition for review"]),
    ("Appellate procedure in the United States",
     "Some reviewing courts who have discretionary review may send a case back without comment other than review improvidently granted. In other words, after looking at the case, they chose not to say anything. The result for the case of review improvidently granted is effectively the same as affirmed, but without that extra higher court stamp of approval.",
     "What is the practical outcome for a case when review is declared improvidently granted?",
     ["effectively the same as affirmed", "the same as affirmed"]),

    # --- Adventure ---
    ("Adventure",
     "According to adventurer André Malraux, in his La Condition Humaine (1933), \"If a man is not ready to risk his life, where is his dignity?\". Similarly, Helen Keller stated that \"Life is either a daring adventure or nothing.\"",
     "Who is quoted as saying that life must be a daring adventure or else nothing at all?",
     ["Helen Keller"]),
    ("Adventure",
     "Some of the oldest and most widespread stories in the world are stories of adventure such as Homer's The Odyssey. Mythologist Joseph Campbell discussed his notion of the monomyth in his book, The Hero with a Thousand Faces. Campbell proposed that the heroic mythological stories from culture to culture followed a similar underlying pattern, starting with the \"call to adventure\", followed by a hazardous journey, and eventual triumph.",
     "What concept did Joseph Campbell present in The Hero with a Thousand Faces?",
     ["the monomyth", "monomyth"]),
    ("Adventure",
     "Adventurous activities can also lead to gains in knowledge, such as those undertaken by explorers and pioneers – the British adventurer Jason Lewis, for example, uses adventures to draw global sustainability lessons from living within finite environmental constraints on expeditions to share with schoolchildren. Adventure education intentionally uses challenging experiences for learning.",
     "How many countries has Jason Lewis crossed on his expeditions?",
     None),

    # --- Algae ---
    ("Algae",
     "Algae can be used as indicator organisms to monitor pollution in various aquatic systems. In many cases, algal metabolism is sensitive to various pollutants. Due to this, the species composition of algal populations may shift in the presence of chemical pollutants.",
     "What environmental problem in bodies of water can algae help scientists track?",
     ["pollution"]),

    # --- A ---
    ("A",
     "It is similar to the Ancient Greek letter alpha, from which it derives. The upper-case version consists of the two slanting sides of a triangle, crossed in the middle by a horizontal bar.",
     "From which Greek letter is the letter A descended?",
     ["alpha", "the Ancient Greek letter alpha", "letter alpha"]),
    ("A",
     "\"A\" is often used to denote something or someone of a better or more prestigious quality or status: A-, A or A+, the best grade that can be assigned by teachers for students' schoolwork; \"A grade\" for clean restaurants; A-list celebrities, etc. Such associations can have a motivating effect, as exposure to the letter A has been found to improve performance, when compared with other letters.",
     "When did schools first start using the letter A as the top grade?",
     None),

    # --- Ambiguity ---
    ("Ambiguity",
     "Some languages have been created with the intention of avoiding ambiguity, especially lexical ambiguity. Lojban and Loglan are two related languages which have been created for this, focusing chiefly on syntactic ambiguity as well. The languages can be both spoken and written.",
     "Which two constructed languages were designed to minimise ambiguity?",
     ["Lojban and Loglan"]),
]
